-- The brake's alert is named as issue 13 names it: brake_held (was mass_leaver_brake).
UPDATE "alerts" SET "kind" = 'brake_held' WHERE "kind" = 'mass_leaver_brake';
