"""The app's own support code, beside app.py: model sources and limits, pictures, training sessions, errors.

Nothing here is part of the pixelrnn library (which never imports gradio); app.py keeps the layout and the wiring.
"""
