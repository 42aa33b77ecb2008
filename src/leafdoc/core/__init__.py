"""What every layer uses: the one Settings, errors that say what to do, atomic writes."""
