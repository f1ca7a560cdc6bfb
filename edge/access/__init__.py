"""Who may enter, and the door they go through: the decision over several frames,
weekly schedules, the door controller and its GPIO backends."""
