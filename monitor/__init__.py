"""monitor: a news-monitoring and alert daemon.

Data flows one way through one subpackage per stage:
source -> fetch -> parse -> extract -> dedup -> match -> alerts (outbox) -> deliver.
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/monitor-news/monitor"


def user_agent(contact: str = "") -> str:
    """The User-Agent of every request (polls, pages, deliveries). Here, not in the fetcher, so
    that a process that only delivers does not import the fetcher for it (~40 ms)."""
    extra = f"; {contact}" if contact else ""
    return f"monitor/{__version__} (+{PROJECT_URL}{extra})"
