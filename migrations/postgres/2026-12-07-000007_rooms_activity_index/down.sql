DROP INDEX rooms_activity_idx;
