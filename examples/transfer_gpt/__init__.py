"""Tune a small GPT in muP/CompleteP and transfer its hyperparameters to a larger one (see ``model.py``)."""
