"""Stage: delivery. Channels send an AlertMessage or raise DeliveryError."""

from monitor.deliver.base import Channel, DeliveryError, build_channel, validate_channel
from monitor.deliver.worker import deliver_due

__all__ = ["Channel", "DeliveryError", "build_channel", "deliver_due", "validate_channel"]
