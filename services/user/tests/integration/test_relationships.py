"""Contacts, blocks and preferences on the real cluster and databases, through the caches."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from contracts import auth as auth_contracts
from contracts import user as wire
from contracts.base import Envelope
from user.domain.errors import InvalidInputError, NotFoundError

pytestmark = pytest.mark.integration


def _env(message: Any) -> Envelope:
    return Envelope.for_message(message, producer="test")


async def _register(service: Any) -> str:
    suffix = secrets.token_hex(4)
    msg = auth_contracts.AccountRegistered(
        user_id=f"r-{suffix}", username=f"r_{suffix}", display_name=suffix
    )
    await service.profiles.account_registered(msg, _env(msg))
    return msg.user_id


async def test_contacts_are_added_listed_and_removed_through_the_cache(make_service: Any) -> None:
    service = await make_service()
    rel = service.relationships
    me, a, b = await _register(service), await _register(service), await _register(service)
    listing = wire.ListContacts(user_id=me)
    assert (await rel.list_contacts(listing, _env(listing))).items == []  # cached empty
    for other in (a, b, a):
        cmd = wire.AddContact(user_id=me, contact_id=other)
        await rel.add_contact(cmd, _env(cmd))
    assert (await rel.list_contacts(listing, _env(listing))).items == [a, b]
    cmd_rm = wire.RemoveContact(user_id=me, contact_id=a)
    await rel.remove_contact(cmd_rm, _env(cmd_rm))
    assert (await rel.list_contacts(listing, _env(listing))).items == [b]


async def test_a_contact_must_exist_and_not_be_oneself(make_service: Any) -> None:
    service = await make_service()
    me = await _register(service)
    to_self = wire.AddContact(user_id=me, contact_id=me)
    with pytest.raises(InvalidInputError):
        await service.relationships.add_contact(to_self, _env(to_self))
    to_nobody = wire.AddContact(user_id=me, contact_id="nobody-" + secrets.token_hex(3))
    with pytest.raises(NotFoundError):
        await service.relationships.add_contact(to_nobody, _env(to_nobody))


async def test_blocks_are_listed_and_lifted(make_service: Any) -> None:
    service = await make_service()
    rel = service.relationships
    me, pest = await _register(service), await _register(service)
    listing = wire.ListBlocks(user_id=me)
    assert (await rel.list_blocks(listing, _env(listing))).items == []
    block = wire.BlockUser(user_id=me, blocked_id=pest)
    await rel.block_user(block, _env(block))
    assert (await rel.list_blocks(listing, _env(listing))).items == [pest]
    unblock = wire.UnblockUser(user_id=me, blocked_id=pest)
    await rel.unblock_user(unblock, _env(unblock))
    assert (await rel.list_blocks(listing, _env(listing))).items == []


async def test_preferences_start_at_defaults_and_keep_valid_changes(make_service: Any) -> None:
    service = await make_service()
    prefs = service.preferences
    me = await _register(service)
    ask = wire.GetPreferences(user_id=me)
    assert await prefs.get_preferences(ask, _env(ask)) == wire.Preferences()
    change = wire.UpdatePreferences(user_id=me, theme="dark", language="pt-BR")
    await prefs.update_preferences(change, _env(change))
    got = await prefs.get_preferences(ask, _env(ask))
    assert (got.theme, got.language, got.notifications) == ("dark", "pt-BR", "all")
    bad = wire.UpdatePreferences(user_id=me, language="english please")
    with pytest.raises(InvalidInputError):
        await prefs.update_preferences(bad, _env(bad))
