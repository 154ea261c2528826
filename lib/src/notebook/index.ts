// notebook/: output for Jupyter (figures, tables, findings) and what every study notebook repeats.
// Internal on purpose: output-name checks and atomic file writes.
export type { MimeBundle } from "./env";
export {
  projectRoot,
  figuresDir,
  resultsDir,
  notebookModelPath,
  notebookDevice,
  inNotebook,
  displayBundle,
  escapeHtml,
} from "./env";
export { PROGRESS_MARKER, progressText, progressLine, showProgressInNotebook, logForwardPasses } from "./progress";
export type { ProgressLineOptions } from "./progress";
export type { PlotlyFigure, SaveFigureOptions, ShowFigureOptions, FigureOutput } from "./plot";
export {
  PLOTLY_MIME,
  figureHtml,
  chromiumPath,
  closeFigureRenderer,
  renderFigurePng,
  saveFigure,
  showFigure,
} from "./plot";
export type { TableRow, DataFrameLike, SaveTableOptions, ShowTableOptions, TableOutput } from "./table";
export { toCsv, saveTable, showTable } from "./table";
export * from "./figures";
export type { ShowAttentionOptions, AttentionBundle } from "./attention-viewer";
export { showAttention, attentionViewerHtml, attentionBundle } from "./attention-viewer";
export * from "./study-setup";
