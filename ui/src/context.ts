// What every screen may use: the latest snapshot, the shell's clock, navigation, and the
// key ceremony overlay.
import type { Snapshot } from "./types";

export type Route =
  | { name: "inbox" }
  | { name: "request"; id: string }
  | { name: "history" }
  | { name: "settings" };

export interface Context {
  snapshot(): Snapshot | null;
  /// The shell's clock (Unix seconds), corrected for the web view's.
  now(): number;
  navigate(route: Route): void;
  ceremony: import("./screens/ceremony").CeremonyOverlay;
}
