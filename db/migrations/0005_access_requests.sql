CREATE TABLE "approval_tokens" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"approval_id" uuid NOT NULL,
	"purpose" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "approvals" DROP CONSTRAINT "approvals_decision_check";--> statement-breakpoint
ALTER TABLE "approvals" ALTER COLUMN "token_hash" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "justification" text;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "duration_ms" bigint;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "revocation_status" text;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "retained_by" jsonb;--> statement-breakpoint
ALTER TABLE "access_requests" ADD COLUMN "workflow_started_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "employee_id" text;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "stage" integer NOT NULL;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "role" text NOT NULL;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "fallback_reason" text;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "escalated_from" uuid;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "escalation_note" text;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "decided_via" text;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "comment" text;--> statement-breakpoint
ALTER TABLE "approval_tokens" ADD CONSTRAINT "approval_tokens_approval_id_approvals_id_fk" FOREIGN KEY ("approval_id") REFERENCES "public"."approvals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "access_requests_status_idx" ON "access_requests" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "access_requests_unstarted_idx" ON "access_requests" USING btree ("created_at") WHERE workflow_started_at is null and kind <> 'birthright';--> statement-breakpoint
CREATE UNIQUE INDEX "approvals_stage_approver_idx" ON "approvals" USING btree ("request_id","stage","approver");--> statement-breakpoint
CREATE INDEX "approvals_approver_idx" ON "approvals" USING btree ("approver") WHERE decision is null;--> statement-breakpoint
ALTER TABLE "access_requests" ADD CONSTRAINT "access_requests_revocation_status_check" CHECK (revocation_status is null or revocation_status in ('pending', 'revoked', 'failed', 'retained'));--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_role_check" CHECK (role in ('manager', 'owner', 'escalation', 'mover_review'));--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_decision_check" CHECK (decision is null or decision in ('approved', 'denied', 'expired', 'cancelled'));