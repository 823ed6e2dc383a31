CREATE TABLE "hr_batches" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"source" text NOT NULL,
	"status" text DEFAULT 'accepted' NOT NULL,
	"events" integer DEFAULT 0 NOT NULL,
	"terminations" integer DEFAULT 0 NOT NULL,
	"active_identities" integer DEFAULT 0 NOT NULL,
	"reason" text,
	"window_ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	"decided_by" text,
	CONSTRAINT "hr_batches_source_check" CHECK (source in ('webhook', 'scim', 'csv', 'api')),
	CONSTRAINT "hr_batches_status_check" CHECK (status in ('accepted', 'held', 'released', 'discarded'))
);
--> statement-breakpoint
ALTER TABLE "hr_events" DROP CONSTRAINT "hr_events_status_check";--> statement-breakpoint
ALTER TABLE "hr_events" ADD COLUMN "batch_id" uuid;--> statement-breakpoint
CREATE INDEX "hr_events_batch_idx" ON "hr_events" USING btree ("batch_id");--> statement-breakpoint
ALTER TABLE "hr_events" ADD CONSTRAINT "hr_events_status_check" CHECK (status in ('received', 'held', 'dispatched', 'applied', 'ignored', 'rejected'));