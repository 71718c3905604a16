"""Stage: delivery. Channels send an AlertMessage or raise DeliveryError.

``monitor.deliver.channels`` holds one module per channel type; importing this package
registers them all."""

from monitor.deliver import channels
from monitor.deliver.base import Channel, DeliveryError, build_channel, validate_channel

__all__ = ["Channel", "DeliveryError", "build_channel", "channels", "validate_channel"]
