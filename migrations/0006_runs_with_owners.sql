CREATE TABLE `run_failures` (
	`id` text PRIMARY KEY NOT NULL,
	`job_id` text,
	`status` text NOT NULL,
	`finished_at` integer NOT NULL,
	`run` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `run_failures_finished_idx` ON `run_failures` (`finished_at`);--> statement-breakpoint
CREATE TABLE `stats_flushes` (
	`owner_id` text PRIMARY KEY NOT NULL,
	`flushed_through` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `jobs` ADD `last_run_at` integer;