"""Evaluation: generate answers for a data set, read them with the task's parser, score them."""
