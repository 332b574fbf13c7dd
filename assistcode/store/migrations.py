"""Named, append-only schema migrations. Never edit or reorder an entry: add a new one.

Each runs once, in its own transaction, and is recorded in ``_migrations``.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_core",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,             -- corpus | codebook | gold
            source TEXT NOT NULL,           -- file name as given (for the user; ids never depend on it)
            options TEXT NOT NULL DEFAULT '{}',
            counts TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            key TEXT NOT NULL DEFAULT '',
            metadata TEXT NOT NULL DEFAULT '{}',
            encoding TEXT NOT NULL,
            segmenter TEXT NOT NULL,
            import_id INTEGER REFERENCES imports(id)
        );
        CREATE TABLE segments (
            id TEXT PRIMARY KEY,
            document_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            speaker TEXT,
            text TEXT NOT NULL
        );
        CREATE TABLE codebooks (
            hash TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,    -- order of import: the highest is current unless meta says otherwise
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,             -- canonical JSON of the codes
            source TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE coders (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('human', 'model', 'reviewer')),
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        -- Which segments a coder saw, whether or not they applied a code: "saw it, no code" is not "never saw it".
        CREATE TABLE seen (
            segment_id TEXT NOT NULL,
            coder TEXT NOT NULL REFERENCES coders(name),
            import_id INTEGER REFERENCES imports(id),
            PRIMARY KEY (segment_id, coder)
        ) WITHOUT ROWID;
        CREATE TABLE annotations (
            id INTEGER PRIMARY KEY,
            segment_id TEXT NOT NULL,
            coder TEXT NOT NULL REFERENCES coders(name),
            code TEXT NOT NULL,
            confidence REAL,
            rationale TEXT,
            evidence TEXT,
            evidence_start INTEGER,
            evidence_end INTEGER,
            import_id INTEGER REFERENCES imports(id),
            UNIQUE (segment_id, coder, code)
        );
        CREATE INDEX annotations_coder ON annotations(coder, segment_id);
        """,
    ),
    (
        "002_segment_order",
        # Context (turns before and after) and exports read segments in document order.
        "CREATE INDEX segments_document ON segments(document_id, position);",
    ),
    (
        "003_segments_clustered_by_document",
        # The index of 002 cost a third of import time at a million segments (eval/bench/import_bench.py). A
        # document's segments are inserted together, so their rowids are contiguous: the document records the
        # range, and reading a document's segments in order is a rowid range scan with no index to maintain.
        """
        ALTER TABLE documents ADD COLUMN first_segment INTEGER;
        ALTER TABLE documents ADD COLUMN segment_count INTEGER NOT NULL DEFAULT 0;
        UPDATE documents SET
            first_segment = (SELECT min(rowid) FROM segments WHERE document_id = documents.id),
            segment_count = (SELECT count(*) FROM segments WHERE document_id = documents.id);
        DROP INDEX segments_document;
        """,
    ),
    (
        "004_runs",
        """
        -- One pass of a provider over segments. Its coder holds the proposals (annotations) and what it saw.
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            coder TEXT NOT NULL UNIQUE REFERENCES coders(name),
            fingerprint TEXT NOT NULL,      -- hash of what makes it "the same command": resumes match on it
            status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped')),
            manifest TEXT NOT NULL,         -- provider, model, parameters, template, codebook, corpus, usage, counts
            started_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX runs_fingerprint ON runs(fingerprint);
        -- How each segment of a run ended: ok (with proposals, possibly none) or failed with a reason.
        CREATE TABLE run_segments (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            segment_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            prompt_tokens REAL NOT NULL DEFAULT 0,
            completion_tokens REAL NOT NULL DEFAULT 0,
            cost REAL,
            prompt_hash TEXT,
            unknown_codes TEXT,             -- JSON list of code names the model invented (dropped)
            quotes_not_found INTEGER NOT NULL DEFAULT 0,
            self_consistency REAL,          -- share of samples that gave the majority code set
            raw TEXT,                       -- the raw reply, kept where something was dropped or failed
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, segment_id)
        ) WITHOUT ROWID;
        -- Replies by the hash of (provider, model, parameters, rendered prompt, sample): paid for once.
        CREATE TABLE call_cache (
            key TEXT PRIMARY KEY,
            reply TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            model TEXT,
            mode TEXT,
            created_at TEXT NOT NULL
        );
        -- The structured-output mode each endpoint accepted, so a refusal is paid for once.
        CREATE TABLE endpoint_modes (
            endpoint TEXT NOT NULL,
            model TEXT NOT NULL,
            mode TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (endpoint, model)
        );
        -- Codes an inductive run proposed, for the researcher to group and merge.
        CREATE TABLE candidates (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            segment_id TEXT NOT NULL,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            evidence TEXT,
            evidence_found INTEGER,
            confidence REAL,
            status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'merged', 'rejected')),
            merged_into TEXT
        );
        ALTER TABLE annotations ADD COLUMN run_id INTEGER REFERENCES runs(id);
        ALTER TABLE annotations ADD COLUMN evidence_found INTEGER;
        """,
    ),
    (
        "005_review",
        """
        -- The reviewer queue: one item per (segment, suggested code set) of a run.
        CREATE TABLE review_items (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,       -- the same on every machine: hash of (run fingerprint, segment)
            segment_id TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            coder TEXT NOT NULL REFERENCES coders(name),   -- whose suggestion is reviewed
            proposed TEXT NOT NULL,         -- JSON list of code ids
            priority REAL NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            audit INTEGER NOT NULL DEFAULT 0,   -- drawn at random from the confident items, to estimate their error
            reviews_needed INTEGER NOT NULL DEFAULT 1,
            reviews_done INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'adjudicate')),
            final TEXT,                     -- JSON list: the settled code set, once there is one
            created_at TEXT NOT NULL
        );
        CREATE INDEX review_open ON review_items(priority DESC, id) WHERE status = 'open';
        CREATE INDEX review_adjudicate ON review_items(id) WHERE status = 'adjudicate';
        CREATE INDEX review_items_segment ON review_items(segment_id);
        -- Who is working on what, until when: two reviewers never get the same item unless it needs two reviews.
        CREATE TABLE review_leases (
            item_id INTEGER NOT NULL REFERENCES review_items(id),
            reviewer TEXT NOT NULL,
            until REAL NOT NULL,
            PRIMARY KEY (item_id, reviewer)
        ) WITHOUT ROWID;
        CREATE INDEX review_leases_reviewer ON review_leases(reviewer, until);
        -- The audit trail. Append-only: undo is a new record, and the triggers refuse any change.
        CREATE TABLE review_decisions (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            item_id INTEGER NOT NULL REFERENCES review_items(id),
            reviewer TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('accept', 'reject', 'edit', 'skip', 'undo', 'adjudicate')),
            codes_before TEXT NOT NULL,     -- JSON list: what the suggestion (or the undone decision) held
            codes_after TEXT,               -- JSON list: the reviewer's codes (none for skip)
            memo TEXT,
            shown TEXT NOT NULL DEFAULT '{}',   -- what the reviewer saw: blind first pass, model, prompt, confidence
            undoes TEXT,                    -- uid of the decision an undo takes back
            origin TEXT                     -- the log a merged decision came from
        );
        CREATE INDEX review_decisions_item ON review_decisions(item_id, reviewer);
        CREATE INDEX review_decisions_reviewer ON review_decisions(reviewer, id);
        CREATE TRIGGER review_decisions_no_update BEFORE UPDATE ON review_decisions
            BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
        CREATE TRIGGER review_decisions_no_delete BEFORE DELETE ON review_decisions
            BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
        -- Each `assistcode eval`, so the next one can say how agreement moved (after a review round, say).
        CREATE TABLE eval_history (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,              -- hash of the coders compared and the reference
            created_at TEXT NOT NULL,
            decisions INTEGER NOT NULL,     -- review decisions in the store at the time
            summary TEXT NOT NULL
        );
        CREATE INDEX eval_history_key ON eval_history(key, id);
        """,
    ),
    (
        "006_suites",
        """
        -- Which run holds each configuration of an evaluation suite, and the time its calls took.
        CREATE TABLE suite_runs (
            suite TEXT NOT NULL,
            label TEXT NOT NULL,
            config TEXT NOT NULL,           -- canonical JSON of the configuration
            coder TEXT NOT NULL REFERENCES coders(name),
            seconds REAL NOT NULL DEFAULT 0,    -- wall time of the sessions that made calls
            PRIMARY KEY (suite, label)
        ) WITHOUT ROWID;
        -- Every suite report, with its manifest: how agreement moved as codebook and prompts were revised.
        CREATE TABLE suite_results (
            id INTEGER PRIMARY KEY,
            suite TEXT NOT NULL,
            suite_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            manifest TEXT NOT NULL,
            result TEXT NOT NULL
        );
        CREATE INDEX suite_results_suite ON suite_results(suite, id);
        """,
    ),
    (
        "007_scores",
        """
        -- Per-code scores of a run (scoring templates, similarity, trained): raw as the provider gave it (P(yes)
        -- normalised over the yes/no variants, an option's probability, a cosine), prob once calibrated.
        CREATE TABLE scores (
            run_id INTEGER NOT NULL,
            segment_id TEXT NOT NULL,
            code TEXT NOT NULL,
            raw REAL NOT NULL,
            prob REAL,
            PRIMARY KEY (run_id, segment_id, code)
        ) WITHOUT ROWID;
        -- Raw scores of content-free inputs ("N/A", "", "[MASK]"), measured once per run: contextual calibration.
        CREATE TABLE content_free_scores (
            run_id INTEGER NOT NULL,
            input TEXT NOT NULL,
            code TEXT NOT NULL,
            raw REAL NOT NULL,
            PRIMARY KEY (run_id, input, code)
        ) WITHOUT ROWID;
        -- A codebook whose codes are mutually exclusive (at most one per unit): `exclusive: true` in its file.
        ALTER TABLE codebooks ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        "008_segment_context",
        """
        -- Where a transcript says so: the second a turn starts, and the speaker's role (interviewer, participant).
        ALTER TABLE segments ADD COLUMN start_time REAL;
        ALTER TABLE segments ADD COLUMN role TEXT;
        """,
    ),
    (
        "009_run_owner",
        """
        -- The process coding a run ("host pid start-time"), and when it last said it was alive: a second command on
        -- the same run is refused while the owner lives, and a run whose process died is resumed by the next one.
        ALTER TABLE runs ADD COLUMN owner TEXT;
        ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
        """,
    ),
    (
        "010_spans",
        """
        -- A coder's code on a character range of a document (code points, end exclusive), independent of segments:
        -- a QDA tool's selection, another tool's span export, or a model's located evidence quote.
        CREATE TABLE span_codings (
            id INTEGER PRIMARY KEY,
            document_id TEXT NOT NULL,
            start INTEGER NOT NULL CHECK (start >= 0),
            "end" INTEGER NOT NULL CHECK ("end" > start),
            coder TEXT NOT NULL REFERENCES coders(name),
            code TEXT NOT NULL,
            import_id INTEGER REFERENCES imports(id),
            run_id INTEGER REFERENCES runs(id),
            UNIQUE (coder, document_id, code, start, "end")
        );
        CREATE INDEX span_codings_document ON span_codings(document_id, coder);
        """,
    ),
    (
        "011_batches",
        """
        -- Batch API submissions of a run (assistcode code --batch-api), one row per uploaded file and batch. The row
        -- is written before the upload and carries a tag sent as the batch's metadata: a command killed at any point
        -- finds what it sent (by the tag, if it died before it could store the batch's id) and never sends it twice.
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL,
            endpoint TEXT NOT NULL,         -- the base URL, redacted
            tag TEXT NOT NULL UNIQUE,
            input_file_id TEXT,
            batch_id TEXT,                  -- the API's id, once created
            status TEXT NOT NULL,           -- preparing | uploaded | the API's status | ingested | abandoned
            requests INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}',  -- what ingesting found: replies, failures, malformed lines, unknown ids, duplicates
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX batches_run ON batches(run_id, status);
        -- Each request of a run sent through the Batch API, by custom_id (a hash of the request's body).
        CREATE TABLE batch_requests (
            run_id INTEGER NOT NULL,
            custom_id TEXT NOT NULL,
            batch INTEGER REFERENCES batches(id),   -- the submission holding it now
            status TEXT NOT NULL,           -- sent | done | retry | sync | failed
            attempts INTEGER NOT NULL DEFAULT 0,    -- submissions
            responses TEXT NOT NULL DEFAULT '[]',   -- JSON list of the chat completions it got, in order
            error TEXT,                     -- why it has no (further) reply
            PRIMARY KEY (run_id, custom_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "012_call_endpoint",
        """
        -- Which endpoint answered the call a segment's outcome rests on (several --base-url): NULL for one endpoint.
        ALTER TABLE run_segments ADD COLUMN endpoint TEXT;
        """,
    ),
]
