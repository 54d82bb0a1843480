// The dashboard type our JSON must satisfy: Grafana's own schema (@grafana/schema), with each panel
// type's options and field config, written the way JSON spells it. tests/test_dashboards.py embeds
// every dashboard of grafana/dashboards as `export const dashboard = <JSON> satisfies LlmoptDashboard`
// and runs tsc over them: a misspelled key or a value of the wrong type fails the test.
import type {
  AnnotationQuery,
  Dashboard,
  DataQuery,
  FieldConfig,
  FieldConfigSource,
  Panel,
} from '@grafana/schema';
import type { Options as BarGaugeOptions } from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type { Options as GaugeOptions } from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type {
  FieldConfig as TableFieldConfig,
  Options as TableOptions,
} from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// JSON holds an enum's value ("absolute"), never the TypeScript enum member (ThresholdsMode.Absolute):
// string enums become the union of their values, everything else is kept, recursively.
type AsJson<T> = T extends string
  ? string extends T
    ? string
    : `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer Item>
      ? Array<AsJson<Item>>
      : T extends object
        ? { [Key in keyof T]: AsJson<T[Key]> }
        : T;

// The data source is always the dashboard variable, so file provisioning needs no import inputs.
interface DatasourceVariable {
  type: 'prometheus';
  uid: '${datasource}';
}

// A Prometheus query (the data source plugin's model; @grafana/schema covers only Grafana core).
interface PrometheusQuery extends DataQuery {
  datasource: DatasourceVariable;
  editorMode: 'code' | 'builder';
  expr: string;
  legendFormat: string;
  range: boolean;
  instant: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  exemplar?: boolean;
}

// Prometheus annotations keep their title, text and tag formats next to the common fields.
interface PrometheusAnnotation extends Omit<AnnotationQuery<PrometheusQuery>, 'datasource' | 'target'> {
  datasource: DatasourceVariable;
  target: Omit<PrometheusQuery, 'datasource' | 'editorMode' | 'legendFormat' | 'range' | 'instant'> & {
    interval: string;
  };
  titleFormat: string;
  textFormat: string;
  tagKeys: string;
  useValueForTime: boolean;
}

// Every panel: a description, a unit, the data source variable, Prometheus targets, and the options
// and custom field config of its type. Grafana fills the options a panel leaves out with defaults.
type PanelOf<Type extends string, Options, Custom> = Omit<
  Panel,
  'type' | 'datasource' | 'description' | 'fieldConfig' | 'options' | 'targets'
> & {
  type: Type;
  title: string;
  description: string;
  datasource: DatasourceVariable;
  gridPos: { x: number; y: number; w: number; h: number };
  options: Partial<Options>;
  fieldConfig: {
    defaults: Omit<FieldConfig, 'custom' | 'unit'> & { unit: string; custom?: Partial<Custom> };
    overrides: FieldConfigSource['overrides'];
  };
  targets: PrometheusQuery[];
};

type LlmoptPanel =
  | PanelOf<'timeseries', TimeSeriesOptions, TimeSeriesFieldConfig>
  | PanelOf<'stat', StatOptions, never>
  | PanelOf<'gauge', GaugeOptions, never>
  | PanelOf<'bargauge', BarGaugeOptions, never>
  | PanelOf<'table', TableOptions, TableFieldConfig>;

export type LlmoptDashboard = AsJson<
  Omit<Dashboard, 'panels' | 'annotations'> & {
    uid: string;
    title: string;
    panels: LlmoptPanel[];
    annotations: { list: PrometheusAnnotation[] };
  }
>;
