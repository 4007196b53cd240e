"""The online model: a challenger that learns each day's sales as they are recorded (River), pure."""
