"""Delivery channels behind one interface (``store.protocols.Channel``): in-app, log, webhook."""

from notification.channels.in_app import InAppChannel
from notification.channels.log import LogChannel
from notification.channels.webhook import WebhookChannel, sign

__all__ = ["InAppChannel", "LogChannel", "WebhookChannel", "sign"]
