"""The field app's screens, by the names the ScreenManager knows them by."""

from .case import CaseScreen
from .cases import CasesScreen
from .disputes import DisputeReportScreen, DisputeScreen, DisputesScreen
from .home import HomeScreen
from .houses import HouseCheckScreen, HouseScreen, HousesScreen, TenantScreen
from .login import LoginScreen
from .patrol import PatrolScreen
from .places import PlaceCheckScreen, PlaceScreen, PlacesScreen
from .report import ReportScreen
from .settings import SettingsScreen
from .sync import SyncScreen

SCREENS = {
    "login": LoginScreen,
    "home": HomeScreen,
    "report": ReportScreen,
    "cases": CasesScreen,
    "case": CaseScreen,
    "sync": SyncScreen,
    "settings": SettingsScreen,
    "houses": HousesScreen,
    "house": HouseScreen,
    "house_check": HouseCheckScreen,
    "tenant": TenantScreen,
    "patrol": PatrolScreen,
    "disputes": DisputesScreen,
    "dispute": DisputeScreen,
    "dispute_report": DisputeReportScreen,
    "places": PlacesScreen,
    "place": PlaceScreen,
    "place_check": PlaceCheckScreen,
}

__all__ = ["SCREENS"]
