"""Progress bars that still read right where widgets do not render (GitHub, nbviewer, a terminal).

In JupyterLab ``tqdm.auto`` draws a widget, and a saved notebook keeps, beside the widget, the plain text
of the bar *as it was when first shown*: "0%| 0/16". A viewer without widgets shows that text, so every
finished bar looked stuck at 0%. This bar is ``tqdm.auto``'s, except that when it closes it updates its
own display, so the saved text is the bar's final state ("100%| 16/16 [00:10<00:00]").
"""

from __future__ import annotations

from tqdm.auto import tqdm as auto_tqdm

__all__ = ["tqdm"]

try:
    from tqdm.notebook import tqdm_notebook

    IN_NOTEBOOK = issubclass(auto_tqdm, tqdm_notebook)
except ImportError:  # no ipywidgets: tqdm.auto is the text bar
    IN_NOTEBOOK = False


class tqdm(auto_tqdm):  # noqa: N801 (used exactly as tqdm.auto.tqdm)
    """``tqdm.auto.tqdm`` whose saved plain-text fallback shows where the bar ended."""

    def __init__(self, *args, **kwargs):
        if IN_NOTEBOOK:
            kwargs["display"] = False  # shown below, with a handle to update it when the bar closes
        super().__init__(*args, **kwargs)
        self._display_handle = None
        if IN_NOTEBOOK and not self.disable:
            from IPython.display import display

            self._display_handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self):
        super().close()
        if self._display_handle is not None:
            handle, self._display_handle = self._display_handle, None
            handle.update(self.container)  # the widget again, with the finished bar as its text
