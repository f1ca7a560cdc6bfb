"""The broker client: a separate process (``facegate mqtt``) that carries this terminal's
events to the site's MQTT broker, keeps its people in step with the other terminals,
and shows the terminal to Home Assistant. The door loop never waits on it: they meet
in the gallery (the outbox, the people) and on the control socket (lock state, remote
unlock)."""
