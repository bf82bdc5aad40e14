"""The `ppo` program (model C, second half): PPO with a KL penalty against a trained reward model.

One base model in memory; the policy, its frozen reference and the reward model are LoRA adapters on it.
``config`` is standard-library only (the app imports it through training.config); the other modules load
torch. See training/README.md, section "The `ppo` program".
"""
