ALTER TABLE "identities" DROP CONSTRAINT "identities_employee_id_unique";--> statement-breakpoint
ALTER TABLE "hr_events" DROP CONSTRAINT "hr_events_status_check";--> statement-breakpoint
CREATE INDEX "hr_events_terminations_idx" ON "hr_events" USING btree ("received_at") WHERE type = 'terminate';--> statement-breakpoint
CREATE UNIQUE INDEX "identities_employee_id_ci_idx" ON "identities" USING btree (lower("employee_id"));--> statement-breakpoint
ALTER TABLE "hr_events" ADD CONSTRAINT "hr_events_status_check" CHECK (status in ('received', 'held', 'dispatched', 'applied', 'ignored', 'rejected', 'failed'));