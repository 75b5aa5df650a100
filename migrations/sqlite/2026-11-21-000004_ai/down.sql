DROP TABLE ai_messages;
DROP TABLE ai_conversations;
DROP TABLE ai_reservations;
DROP TABLE ai_accounts;
