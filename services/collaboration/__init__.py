"""Collaboration between counties: the network, assistance letters (协查), signed and minimised."""
