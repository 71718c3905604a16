"""monitor: a news-monitoring and alert daemon.

Data flows one way through one subpackage per stage:
source -> fetch -> parse -> extract -> dedup -> match -> alerts (outbox) -> deliver.
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/monitor-news/monitor"
