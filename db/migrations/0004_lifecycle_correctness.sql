-- Employee ids are canonical (upper case) from this release on: fold what earlier
-- releases stored. Two spellings of one id already stored make the unique index below
-- fail on purpose: they are one person and must be merged by hand first.
UPDATE "identities" SET "employee_id" = upper("employee_id"), "attributes" = CASE WHEN jsonb_typeof("attributes"->'managerId') = 'string' THEN jsonb_set("attributes", '{managerId}', to_jsonb(upper("attributes"->>'managerId'))) ELSE "attributes" END WHERE "employee_id" <> upper("employee_id") OR "attributes"->>'managerId' <> upper("attributes"->>'managerId');--> statement-breakpoint
UPDATE "hr_events" SET "employee_id" = upper("employee_id") WHERE "employee_id" <> upper("employee_id");--> statement-breakpoint
ALTER TABLE "hr_events" DROP CONSTRAINT "hr_events_status_check";--> statement-breakpoint
CREATE INDEX "hr_events_terminations_idx" ON "hr_events" USING btree ("received_at") WHERE type = 'terminate';--> statement-breakpoint
CREATE UNIQUE INDEX "identities_employee_id_ci_idx" ON "identities" USING btree (lower("employee_id"));--> statement-breakpoint
ALTER TABLE "hr_batches" DROP COLUMN "window_ends_at";--> statement-breakpoint
ALTER TABLE "hr_events" ADD CONSTRAINT "hr_events_status_check" CHECK (status in ('received', 'held', 'dispatched', 'applied', 'ignored', 'rejected', 'failed'));