"""The experiment configs that ship with ctrlgym (``ctrlgym configs`` lists them; ``ctrlgym train
fastslow/ppo_multiclass_queue`` runs one by name). The YAML files live in the sub-folders."""
