ALTER TABLE "grants" ADD COLUMN "status_since" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
-- Existing grants: the last change is the best known start of their status.
UPDATE "grants" SET "status_since" = "updated_at";