"""The four learned parts of HMASD: coordinator, discoverer (actor + critic), discriminators."""
from hmasd.models.coordinator import SkillCoordinator
from hmasd.models.discoverer import DiscovererActor, DiscovererCritic
from hmasd.models.discriminators import AgentDiscriminator, TeamDiscriminator

__all__ = ["SkillCoordinator", "DiscovererActor", "DiscovererCritic", "TeamDiscriminator", "AgentDiscriminator"]
