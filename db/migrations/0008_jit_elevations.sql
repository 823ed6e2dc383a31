ALTER TABLE "approvals" DROP CONSTRAINT "approvals_role_check";--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "revoked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "revocation_lag_ms" bigint;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "ticket" text;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "break_glass" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "extensions" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "access_requests_subject_entitlement_idx" ON "access_requests" USING btree ("identity_id","entitlement_id","created_at");--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_role_check" CHECK (role in ('manager', 'owner', 'escalation', 'mover_review', 'break_glass_review'));