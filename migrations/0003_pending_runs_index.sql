DROP INDEX `runs_job_fire_slot_uq`;--> statement-breakpoint
DROP INDEX `runs_status_idx`;--> statement-breakpoint
CREATE INDEX `runs_pending_idx` ON `runs` (`available_at`) WHERE finished_at IS NULL;--> statement-breakpoint
CREATE INDEX `runs_failed_idx` ON `runs` (`finished_at`) WHERE status IN ('failed', 'dead');--> statement-breakpoint
ALTER TABLE `jobs` DROP COLUMN `last_run_at`;