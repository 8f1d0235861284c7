CREATE TABLE `host_guards` (
	`host` text PRIMARY KEY NOT NULL,
	`circuit` text NOT NULL,
	`consecutive_failures` integer DEFAULT 0 NOT NULL,
	`opened_at` integer,
	`deferred_circuit` integer DEFAULT 0 NOT NULL,
	`deferred_concurrency` integer DEFAULT 0 NOT NULL,
	`deferred_rate_limit` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL
);
