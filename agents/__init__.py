"""ctrlgym agents (Nash DQN, independent DQN and others arrive with their families' issues)."""
