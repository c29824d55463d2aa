"""Training the two agents (issue 7). `rewards`: the reward functions, plain and as TRL reward functions."""
