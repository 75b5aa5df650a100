DROP INDEX rooms_owner_idx;
