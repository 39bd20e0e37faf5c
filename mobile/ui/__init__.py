"""The field app's Kivy UI: thin screens over mobile/app_core.py and mobile/presenters.py.

Import `mobile.ui.app.GridPatrolApp` only after Kivy may create a window
(``python -m mobile`` does it); nothing else in ``mobile`` imports Kivy.
"""
