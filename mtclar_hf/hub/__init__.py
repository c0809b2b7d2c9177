"""Publishing on the Hugging Face Hub: model and dataset cards (``cards``), checked uploads (``push``)."""

from .cards import render_dataset_card, render_model_card, result_groups
from .push import check_hub_folder, push_dataset, push_model

__all__ = ["check_hub_folder", "push_dataset", "push_model", "render_dataset_card", "render_model_card", "result_groups"]
