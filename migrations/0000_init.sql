CREATE TABLE `job_stats` (
	`job_id` text NOT NULL,
	`hour` integer NOT NULL,
	`succeeded` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`dead` integer DEFAULT 0 NOT NULL,
	`cancelled` integer DEFAULT 0 NOT NULL,
	`missed` integer DEFAULT 0 NOT NULL,
	`skipped` integer DEFAULT 0 NOT NULL,
	`duration_count` integer DEFAULT 0 NOT NULL,
	`duration_sum_ms` integer DEFAULT 0 NOT NULL,
	`b0` integer DEFAULT 0 NOT NULL,
	`b1` integer DEFAULT 0 NOT NULL,
	`b2` integer DEFAULT 0 NOT NULL,
	`b3` integer DEFAULT 0 NOT NULL,
	`b4` integer DEFAULT 0 NOT NULL,
	`b5` integer DEFAULT 0 NOT NULL,
	`b6` integer DEFAULT 0 NOT NULL,
	`b7` integer DEFAULT 0 NOT NULL,
	`b8` integer DEFAULT 0 NOT NULL,
	`b9` integer DEFAULT 0 NOT NULL,
	`b10` integer DEFAULT 0 NOT NULL,
	`b11` integer DEFAULT 0 NOT NULL,
	`b12` integer DEFAULT 0 NOT NULL,
	`b13` integer DEFAULT 0 NOT NULL,
	`last_run_id` text,
	`last_status` text,
	`last_finished_at` integer,
	PRIMARY KEY(`job_id`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `job_stats_hour_idx` ON `job_stats` (`hour`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`trigger` text NOT NULL,
	`target` text NOT NULL,
	`timezone` text DEFAULT 'UTC' NOT NULL,
	`start_date` integer,
	`end_date` integer,
	`jitter` integer DEFAULT 0 NOT NULL,
	`max_instances` integer DEFAULT 1 NOT NULL,
	`coalesce` integer DEFAULT true NOT NULL,
	`misfire_grace_time` integer,
	`retry` text,
	`timeout` integer,
	`priority` text DEFAULT 'default' NOT NULL,
	`state` text DEFAULT 'active' NOT NULL,
	`version` integer DEFAULT 1 NOT NULL,
	`tags` text,
	`metadata` text,
	`next_run_at` integer,
	`last_run_at` integer,
	`created_at` integer DEFAULT (strftime('%s', 'now') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (strftime('%s', 'now') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `jobs_state_next_run_idx` ON `jobs` (`state`,`next_run_at`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`job_id` text,
	`fire_slot` integer,
	`status` text NOT NULL,
	`attempt` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer DEFAULT 1 NOT NULL,
	`target` text NOT NULL,
	`retry` text,
	`timeout` integer NOT NULL,
	`priority` text DEFAULT 'default' NOT NULL,
	`scheduled_for` integer NOT NULL,
	`available_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`duration_ms` integer,
	`lease_expires_at` integer,
	`job_version` integer,
	`request_id` text,
	`idempotency_key` text,
	`retry_of` text,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`result` text,
	`error` text,
	`created_at` integer DEFAULT (strftime('%s', 'now') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (strftime('%s', 'now') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `runs_job_fire_slot_uq` ON `runs` (`job_id`,`fire_slot`) WHERE fire_slot IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `runs_idempotency_key_uq` ON `runs` (`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE INDEX `runs_job_scheduled_idx` ON `runs` (`job_id`,`scheduled_for`) WHERE job_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX `runs_status_idx` ON `runs` (`status`,`available_at`);--> statement-breakpoint
CREATE TABLE `scheduler_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL
);
