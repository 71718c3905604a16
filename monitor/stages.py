"""Import every stage that adds checks to the config schema, so a loaded config is validated by
all of them (see ``monitor.config.registry``). The CLI, the daemon and the tests import this
before loading a config; ``monitor.config`` itself imports no stage.
"""

import monitor.alerts.policy
import monitor.deliver.base
import monitor.match
import monitor.sources  # noqa: F401

__all__: list[str] = []
