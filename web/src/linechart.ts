// The line chart (ECharts LineChart), apart from chart.ts so that the
// pages drawing only bars do not load it.
import * as echarts from "echarts/core";
import { LineChart } from "echarts/charts";
import { fresh } from "./chart";

echarts.use([LineChart]);

/** trendLine draws one subject's totals over periods (null: no scorecard then). */
export function trendLine(el: HTMLElement, title: string, periods: string[], values: Array<number | null>): void {
  fresh(el).setOption({
    title: { text: title, textStyle: { fontSize: 14 } },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: periods },
    yAxis: { type: "value", min: 0, max: 100 },
    series: [{ type: "line", data: values, connectNulls: false, symbolSize: 8 }],
    animation: false,
  });
}
