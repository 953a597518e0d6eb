"""vtg-example-brevity: the smallest complete vtg plugin, used as the template in docs/writing-plugins.md."""
