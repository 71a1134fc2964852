"""The connector: runs the WhatsApp sessions of one shard."""
