"""Stage: delivery. Channels send an AlertMessage or raise DeliveryError."""

from monitor.deliver.base import Channel, DeliveryError, build_channel, validate_channel

__all__ = ["Channel", "DeliveryError", "build_channel", "validate_channel"]
