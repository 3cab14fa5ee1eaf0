"""The exception root of the service runtime."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service runtime raises."""


class ConfigError(ServiceError):
    """Settings are missing or malformed; the message names the variable and the problem."""


class StartupError(ServiceError):
    """A dependency (Redis, the database, the listening port) is not usable at start-up."""
