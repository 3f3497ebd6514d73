"""Offline build of the guest environment: one Debian 12 rootfs, a Docker image, a Vagrant box."""
