ALTER TABLE `job_stats` ADD `expired` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `alerts` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `success_deadline_at` integer;--> statement-breakpoint
CREATE INDEX `jobs_success_deadline_idx` ON `jobs` (`success_deadline_at`) WHERE success_deadline_at IS NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `expires_at` integer;--> statement-breakpoint
ALTER TABLE `runs` ADD `callback` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `failure_callback` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `parent_run_id` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `deferred_reason` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `attempts` text;