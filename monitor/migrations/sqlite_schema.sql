-- The schema of a new SQLite database as the migrations of monitor/migrations/versions make it,
-- read back from sqlite_master: monitor.store.db.upgrade makes a new database from it (see
-- monitor/store/snapshot.py). Written by `python -m monitor.store.snapshot`; do not edit.
-- heads: 0301 0302 0401 0501 0602 0701 1201 1301 1403 1601 1701 1702

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)
;
CREATE TABLE source (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	url VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	etag VARCHAR, 
	last_modified VARCHAR, 
	last_polled_at DATETIME, 
	next_poll_at DATETIME, 
	last_status INTEGER, 
	last_error TEXT, 
	consecutive_failures INTEGER NOT NULL, last_warnings TEXT, last_warnings_at DATETIME, poll_interval FLOAT, lease_owner VARCHAR, lease_expires_at DATETIME, config_url VARCHAR, last_success_at DATETIME, broken_since DATETIME, disabled_at DATETIME, disabled_reason TEXT, 
	PRIMARY KEY (id)
)
;
CREATE UNIQUE INDEX ix_source_name ON source (name)
;
CREATE INDEX ix_source_next_poll_at ON source (next_poll_at)
;
CREATE TABLE "match" (
	id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	hits JSON NOT NULL, 
	statements JSON NOT NULL, 
	created_at DATETIME NOT NULL, field VARCHAR, speaker TEXT, quote TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(article_id) REFERENCES article (id), 
	CONSTRAINT uq_match_article_rule UNIQUE (article_id, rule)
)
;
CREATE INDEX ix_match_article_id ON "match" (article_id)
;
CREATE INDEX ix_match_rule ON "match" (rule)
;
CREATE TABLE delivery (
	id INTEGER NOT NULL, 
	"key" VARCHAR NOT NULL, 
	alert_id INTEGER NOT NULL, 
	channel VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME, 
	last_error TEXT, 
	sent_at DATETIME, 
	created_at DATETIME NOT NULL, lease_owner VARCHAR, lease_expires_at DATETIME, digest_due_at DATETIME, digest_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(alert_id) REFERENCES alert (id), 
	UNIQUE ("key")
)
;
CREATE INDEX ix_delivery_alert_id ON delivery (alert_id)
;
CREATE INDEX ix_delivery_due ON delivery (status, next_attempt_at)
;
CREATE TABLE installation (
	id INTEGER NOT NULL, 
	uid VARCHAR NOT NULL, 
	PRIMARY KEY (id)
)
;
CREATE TABLE feedback (
	id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	match_id INTEGER, 
	story_id INTEGER, 
	source_id INTEGER, 
	created_at DATETIME NOT NULL, 
	undone_at DATETIME, 
	PRIMARY KEY (id)
)
;
CREATE INDEX ix_feedback_rule_kind ON feedback (rule, kind)
;
CREATE TABLE feed_token (
	id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	token_hash VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (token_hash)
)
;
CREATE INDEX ix_feed_token_rule ON feed_token (rule)
;
CREATE VIRTUAL TABLE article_terms USING fts5(terms, content='', detail=none, tokenize="ascii tokenchars '_'")
;
CREATE TABLE web_session (
	id_hash VARCHAR NOT NULL, 
	role VARCHAR NOT NULL, 
	tag VARCHAR NOT NULL, 
	csrf VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (id_hash)
)
;
CREATE INDEX ix_web_session_expires_at ON web_session (expires_at)
;
CREATE TABLE story_event (
	article_id INTEGER NOT NULL, 
	at BIGINT NOT NULL, 
	sig JSON NOT NULL, 
	PRIMARY KEY (article_id), 
	FOREIGN KEY(article_id) REFERENCES article (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_story_event_at ON story_event (at)
;
CREATE TABLE story_event_key (
	"key" INTEGER NOT NULL, 
	at BIGINT NOT NULL, 
	article_id INTEGER NOT NULL, 
	PRIMARY KEY ("key", at, article_id)
)
 WITHOUT ROWID


;
CREATE TABLE story_apart (
	story_id INTEGER NOT NULL, 
	other_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (story_id, other_id)
)
;
CREATE TABLE article_vector (
	article_id INTEGER NOT NULL, 
	model VARCHAR NOT NULL, 
	vector BLOB NOT NULL, 
	PRIMARY KEY (article_id), 
	FOREIGN KEY(article_id) REFERENCES article (id) ON DELETE CASCADE
)
;
CREATE TABLE "alert" (
	id INTEGER NOT NULL, 
	"key" VARCHAR NOT NULL, 
	match_id INTEGER, 
	rule VARCHAR NOT NULL, 
	payload JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	kind VARCHAR DEFAULT 'match' NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("key"), 
	FOREIGN KEY(match_id) REFERENCES "match" (id)
)
;
CREATE INDEX ix_alert_match_id ON alert (match_id)
;
CREATE INDEX ix_delivery_digest_id ON delivery (digest_id)
;
CREATE INDEX ix_delivery_open ON delivery (channel, id) WHERE status IN ('pending', 'failed', 'sending')
;
CREATE TABLE story (
	id INTEGER NOT NULL, 
	title TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
)
;
CREATE INDEX ix_story_created_at ON story (created_at)
;
CREATE TABLE "article" (
	id INTEGER NOT NULL, 
	source_id INTEGER NOT NULL, 
	guid VARCHAR NOT NULL, 
	url VARCHAR NOT NULL, 
	original_url VARCHAR NOT NULL, 
	title TEXT NOT NULL, 
	text TEXT NOT NULL, 
	published DATETIME, 
	published_estimated BOOLEAN NOT NULL, 
	authors VARCHAR, 
	language VARCHAR, 
	full_text BOOLEAN NOT NULL, 
	fetch_error TEXT, 
	content_hash VARCHAR, 
	first_seen_at DATETIME NOT NULL, 
	entry_digest VARCHAR, 
	reread_count INTEGER DEFAULT '0' NOT NULL, 
	reread_at DATETIME, 
	story_id INTEGER, 
	duplicate_of INTEGER, image TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_article_source_guid UNIQUE (source_id, guid), 
	CONSTRAINT fk_article_story_id FOREIGN KEY(story_id) REFERENCES story (id), 
	CONSTRAINT fk_article_duplicate_of FOREIGN KEY(duplicate_of) REFERENCES article (id), 
	UNIQUE (url), 
	FOREIGN KEY(source_id) REFERENCES source (id)
)
;
CREATE INDEX ix_article_content_hash ON article (content_hash)
;
CREATE INDEX ix_article_seen_source ON article (first_seen_at, source_id)
;
CREATE INDEX ix_article_source_id ON article (source_id)
;
CREATE INDEX ix_article_first_seen_at ON article (first_seen_at)
;
CREATE INDEX ix_article_story_id ON article (story_id)
;
CREATE TABLE dedup_band (
	band INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	PRIMARY KEY (band, article_id)
)
 WITHOUT ROWID


;
CREATE TABLE dedup_sig (
	article_id INTEGER NOT NULL, 
	bands JSON NOT NULL, 
	PRIMARY KEY (article_id), 
	FOREIGN KEY(article_id) REFERENCES article (id) ON DELETE CASCADE
)
;
CREATE TABLE dedup_boilerplate (
	source_id INTEGER NOT NULL, 
	paragraph BIGINT NOT NULL, 
	PRIMARY KEY (source_id, paragraph), 
	FOREIGN KEY(source_id) REFERENCES source (id) ON DELETE CASCADE
)
;
CREATE TABLE dedup_claim (
	"key" BIGINT NOT NULL, 
	PRIMARY KEY ("key")
)
;
CREATE TABLE story_alert (
	id INTEGER NOT NULL, 
	story_id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	statement VARCHAR NOT NULL, 
	article_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(story_id) REFERENCES story (id), 
	FOREIGN KEY(article_id) REFERENCES article (id), 
	CONSTRAINT uq_story_alert UNIQUE (story_id, rule, statement)
)
;
CREATE INDEX ix_story_alert_story_id ON story_alert (story_id)
;
CREATE INDEX ix_source_disabled_at ON source (disabled_at)
;
