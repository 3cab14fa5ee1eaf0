"""Alembic environment of the chat service (run through ``parley-chat migrate``)."""

from chat.store.tables import metadata
from shared.service.database import run_migrations_env

run_migrations_env(metadata)
