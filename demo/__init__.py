"""The Gradio demo of few-shot video labelling (`demo/app.py`; run it with `mtclar demo` or `python demo/app.py`)."""
