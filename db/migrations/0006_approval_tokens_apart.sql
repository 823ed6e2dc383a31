ALTER TABLE "approvals" DROP CONSTRAINT "approvals_token_hash_unique";--> statement-breakpoint
ALTER TABLE "approvals" DROP COLUMN "token_hash";--> statement-breakpoint
ALTER TABLE "approvals" DROP COLUMN "token_used_at";