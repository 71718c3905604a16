"""Running the daemon for real: claims, health and metrics, systemd, logs, retention."""
