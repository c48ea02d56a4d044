import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "uplot/dist/uPlot.min.css";
import "./index.css";
import { App } from "./App";

// The theme class goes on before the first paint, so a dark page does not flash white.
const saved = localStorage.getItem("clisonix.theme");
if (saved === "dark" || (!saved && window.matchMedia?.("(prefers-color-scheme: dark)").matches))
  document.documentElement.classList.add("dark");

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
