"""The parameters of the SNAP operators the graphs use, as SNAP declares them.

:func:`bigearthnet_s1.graph.validate` checks every graph node against this table (operator
alias, parameter names and aliases, Java types, value sets, the SNAP release that introduced
a parameter), because ``gpt`` rejects an element it does not know; and it holds this
project's own node parameters (:data:`EXTENSION_PARAMS`), which live in the graph's
``<applicationData id="bigearthnet_s1">`` rather than in ``<parameters>``.

Data, not logic: one table of many short entries, which is why it is a module of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParamSpec", "OperatorSpec", "SNAP_OPERATORS", "SPECKLE_FILTERS", "EXTENSION_APP_ID", "EXTENSION_PARAMS",
           "SRTM_1SEC", "COPERNICUS_30M", "EXTERNAL_DEM"]

# Written from the @Parameter declarations of the operators' Java sources (read, not copied):
#   senbox-org/microwave-toolbox @ 7b870281 (tag 14.0.0 line; checked against tag 13.0.4):
#     sar-op-calibration/.../RemoveGRDBorderNoiseOp.java      (alias Remove-GRD-Border-Noise)
#     sar-op-calibration/.../Sentinel1RemoveThermalNoiseOp.java (alias ThermalNoiseRemoval)
#     sar-op-calibration/.../CalibrationOp.java               (alias Calibration)
#     sar-op-sar-processing/.../filtering/SpeckleFilterOp.java (alias Speckle-Filter)
#     sar-op-sar-processing/.../geometric/RangeDopplerGeocodingOp.java (alias Terrain-Correction)
#   senbox-org/snap-engine @ 048ce3a2:
#     snap-gpf/.../common/ReadOp.java, WriteOp.java, SubsetOp.java, BandMathsOp.java,
#     snap-raster/.../gpf/LinearTodBOp.java (alias LinearToFromdB)
# Value sets: SpeckleFilterOp constants, FilterWindow.SIZE_*, ResamplingFactory.*_NAME,
# DEMFactory.DELAUNAY_INTERPOLATION, SARGeocoding.USE_*, CalibrationOp.*_AUX.
# Parameters marked since="14.0" are absent from 13.0.4: SNAP 13 rejects a graph using them,
# so the shipped templates leave them out. Calibration's `outputDNBand` is commented out of
# the @Parameter list in current SNAP (it was a parameter in old releases): gpt rejects it.


@dataclass(frozen=True)
class ParamSpec:
    """One operator parameter as SNAP declares it.

    ``type`` is the Java type (``String``, ``String[]``, ``int``, ``double``, ``boolean``,
    ``File``, ``Rectangle``, ``Geometry``, or a structured type whose children are listed in
    ``children``). ``default`` is SNAP's ``defaultValue`` text (``None``: no default).
    """

    name: str
    type: str
    default: str | None = None
    value_set: tuple[str, ...] | None = None
    alias: str | None = None
    since: str | None = None
    children: tuple[str, ...] | None = None  # allowed child element names (structured types)


@dataclass(frozen=True)
class OperatorSpec:
    """An operator: its alias (the ``<operator>`` text) and its parameters."""

    alias: str
    params: tuple[ParamSpec, ...]
    source: str  # where the parameter list was read
    max_sources: int | None = 1  # None: any number (BandMaths)
    min_sources: int = 1

    def lookup(self, element_name: str) -> ParamSpec | None:
        """The parameter an XML element names (field name or alias, as SNAP accepts both)."""
        for p in self.params:
            if element_name == p.name or element_name == p.alias:
                return p
        return None

    def element_names(self) -> set[str]:
        names = {p.name for p in self.params}
        names.update(p.alias for p in self.params if p.alias)
        return names


_RESAMPLING = (
    "NEAREST_NEIGHBOUR",
    "BILINEAR_INTERPOLATION",
    "CUBIC_CONVOLUTION",
    "BISINC_5_POINT_INTERPOLATION",
    "BISINC_11_POINT_INTERPOLATION",
    "BISINC_21_POINT_INTERPOLATION",
    "BICUBIC_INTERPOLATION",
)
_INCIDENCE = (
    "Use incidence angle from Ellipsoid",
    "Use local incidence angle from DEM",
    "Use projected local incidence angle from DEM",
)
_AUX = ("Latest Auxiliary File", "Product Auxiliary File", "External Auxiliary File")
SPECKLE_FILTERS = (
    "None",
    "Boxcar",
    "Median",
    "Frost",
    "Gamma Map",
    "Lee",
    "Refined Lee",
    "Lee Sigma",
    "IDAN",
    "MuLoG",  # since 14.0
)

_MTB = "senbox-org/microwave-toolbox@7b870281"
_ENG = "senbox-org/snap-engine@048ce3a2"

SNAP_OPERATORS: dict[str, OperatorSpec] = {
    op.alias: op
    for op in [
        OperatorSpec(
            "Read",
            (
                ParamSpec("file", "File"),
                ParamSpec("formatName", "String"),
                ParamSpec("bandNames", "String[]", alias="sourceBands"),
                ParamSpec("maskNames", "String[]", alias="sourceMasks"),
                ParamSpec("pixelRegion", "Rectangle"),
                ParamSpec("geometryRegion", "Geometry"),
                ParamSpec("vectorFile", "File"),
                ParamSpec("polygonRegion", "Geometry"),
                ParamSpec("useAdvancedOptions", "boolean", "false"),
                ParamSpec("copyMetadata", "boolean", "true"),
            ),
            f"{_ENG} snap-gpf/src/main/java/org/esa/snap/core/gpf/common/ReadOp.java",
            max_sources=0,
            min_sources=0,
        ),
        OperatorSpec(
            "Write",
            (
                ParamSpec("file", "File"),
                ParamSpec("formatName", "String", "BEAM-DIMAP"),
                ParamSpec("deleteOutputOnFailure", "boolean", "true"),
                ParamSpec("writeEntireTileRows", "boolean", "false"),
                ParamSpec("clearCacheAfterRowWrite", "boolean", "false"),
            ),
            f"{_ENG} snap-gpf/src/main/java/org/esa/snap/core/gpf/common/WriteOp.java",
        ),
        OperatorSpec(
            "Subset",
            (
                ParamSpec("bandNames", "String[]", alias="sourceBands"),
                ParamSpec("tiePointGridNames", "String[]", alias="tiePointGrids"),
                ParamSpec("region", "Rectangle"),
                ParamSpec("referenceBand", "String", alias="referenceBand"),
                ParamSpec("geoRegion", "Geometry"),
                ParamSpec("subSamplingX", "int", "1"),
                ParamSpec("subSamplingY", "int", "1"),
                ParamSpec("fullSwath", "boolean", "false"),
                ParamSpec("vectorFile", "File"),
                ParamSpec("polygonRegion", "Geometry"),
                ParamSpec("copyMetadata", "boolean", "true"),
            ),
            f"{_ENG} snap-gpf/src/main/java/org/esa/snap/core/gpf/common/SubsetOp.java",
        ),
        OperatorSpec(
            "BandMaths",
            (
                ParamSpec(
                    "targetBandDescriptors",
                    "BandDescriptor[]",
                    alias="targetBands",
                    children=("targetBand",),
                ),
                ParamSpec("variables", "Variable[]", alias="variables", children=("variable",)),
            ),
            f"{_ENG} snap-gpf/src/main/java/org/esa/snap/core/gpf/common/BandMathsOp.java",
            max_sources=None,
        ),
        OperatorSpec(
            "LinearToFromdB",
            (ParamSpec("sourceBandNames", "String[]", alias="sourceBands"),),
            f"{_ENG} snap-raster/src/main/java/org/esa/snap/raster/gpf/LinearTodBOp.java",
        ),
        OperatorSpec(
            "Remove-GRD-Border-Noise",
            (
                ParamSpec("selectedPolarisations", "String[]"),
                ParamSpec("borderLimit", "int", "500"),
                ParamSpec("trimThreshold", "double", "0.5"),
            ),
            f"{_MTB} sar-op-calibration/src/main/java/eu/esa/sar/calibration/gpf/RemoveGRDBorderNoiseOp.java",
        ),
        OperatorSpec(
            "ThermalNoiseRemoval",
            (
                ParamSpec("selectedPolarisations", "String[]"),
                ParamSpec("removeThermalNoise", "boolean", "true"),
                ParamSpec("outputNoise", "boolean", "false"),
                ParamSpec("reIntroduceThermalNoise", "boolean", "false"),
                ParamSpec("clipNegativeValues", "boolean", "true", since="14.0"),
            ),
            f"{_MTB} sar-op-calibration/src/main/java/eu/esa/sar/calibration/gpf/Sentinel1RemoveThermalNoiseOp.java",
        ),
        OperatorSpec(
            "Calibration",
            (
                ParamSpec("sourceBandNames", "String[]", alias="sourceBands"),
                ParamSpec("auxFile", "String", "Latest Auxiliary File", value_set=_AUX),
                ParamSpec("externalAuxFile", "File"),
                ParamSpec("outputImageInComplex", "boolean", "false"),
                ParamSpec("outputImageScaleInDb", "boolean", "false"),
                ParamSpec("createGammaBand", "boolean", "false"),
                ParamSpec("createBetaBand", "boolean", "false"),
                ParamSpec("selectedPolarisations", "String[]"),
                ParamSpec("outputSigmaBand", "boolean", "true"),
                ParamSpec("outputGammaBand", "boolean", "false"),
                ParamSpec("outputBetaBand", "boolean", "false"),
                # outputDNBand: commented out of @Parameter in current SNAP -> unknown element.
            ),
            f"{_MTB} sar-op-calibration/src/main/java/eu/esa/sar/calibration/gpf/CalibrationOp.java",
        ),
        OperatorSpec(
            "Speckle-Filter",
            (
                ParamSpec("sourceBandNames", "String[]", alias="sourceBands"),
                ParamSpec("filter", "String", "Lee Sigma", value_set=SPECKLE_FILTERS),
                ParamSpec("filterSizeX", "int", "3"),
                ParamSpec("filterSizeY", "int", "3"),
                ParamSpec("dampingFactor", "int", "2"),
                ParamSpec("estimateENL", "boolean", "false"),
                ParamSpec("enl", "double", "1.0"),
                ParamSpec("numLooksStr", "String", "1", value_set=("1", "2", "3", "4")),
                ParamSpec(
                    "windowSize",
                    "String",
                    "7x7",
                    value_set=("5x5", "7x7", "9x9", "11x11", "13x13", "15x15", "17x17"),
                ),
                ParamSpec("targetWindowSizeStr", "String", "3x3", value_set=("3x3", "5x5")),
                ParamSpec("sigmaStr", "String", "0.9", value_set=("0.5", "0.6", "0.7", "0.8", "0.9")),
                ParamSpec("anSize", "int", "50"),
            ),
            f"{_MTB} sar-op-sar-processing/src/main/java/eu/esa/sar/sar/gpf/filtering/SpeckleFilterOp.java",
        ),
        OperatorSpec(
            "Terrain-Correction",
            (
                ParamSpec("sourceBandNames", "String[]", alias="sourceBands"),
                ParamSpec("demName", "String", "Copernicus 30m Global DEM"),
                ParamSpec("externalDEMFile", "File"),
                ParamSpec("externalDEMNoDataValue", "double", "0"),
                ParamSpec("externalDEMApplyEGM", "boolean", "true"),
                ParamSpec(
                    "demResamplingMethod",
                    "String",
                    "BILINEAR_INTERPOLATION",
                    value_set=_RESAMPLING + ("DELAUNAY_INTERPOLATION",),
                ),
                ParamSpec("imgResamplingMethod", "String", "BILINEAR_INTERPOLATION", value_set=_RESAMPLING),
                ParamSpec("pixelSpacingInMeter", "double", "0"),
                ParamSpec("pixelSpacingInDegree", "double", "0"),
                ParamSpec("mapProjection", "String", "WGS84(DD)"),
                ParamSpec("alignToStandardGrid", "boolean", "false"),
                ParamSpec("standardGridOriginX", "double", "0"),
                ParamSpec("standardGridOriginY", "double", "0"),
                ParamSpec("nodataValueAtSea", "boolean", "true"),
                ParamSpec("saveDEM", "boolean", "false"),
                ParamSpec("saveLatLon", "boolean", "false"),
                ParamSpec("saveIncidenceAngleFromEllipsoid", "boolean", "false"),
                ParamSpec("saveLocalIncidenceAngle", "boolean", "false"),
                ParamSpec("saveProjectedLocalIncidenceAngle", "boolean", "false"),
                ParamSpec("saveSelectedSourceBand", "boolean", "true"),
                ParamSpec("saveLayoverShadowMask", "boolean", "false"),
                ParamSpec("outputComplex", "boolean", "false"),
                ParamSpec("applyRadiometricNormalization", "boolean", "false"),
                ParamSpec("saveSigmaNought", "boolean", "false"),
                ParamSpec("saveGammaNought", "boolean", "false"),
                ParamSpec("saveBetaNought", "boolean", "false"),
                ParamSpec(
                    "incidenceAngleForSigma0",
                    "String",
                    "Use projected local incidence angle from DEM",
                    value_set=_INCIDENCE,
                ),
                ParamSpec(
                    "incidenceAngleForGamma0",
                    "String",
                    "Use projected local incidence angle from DEM",
                    value_set=_INCIDENCE,
                ),
                ParamSpec("auxFile", "String", "Latest Auxiliary File", value_set=_AUX),
                ParamSpec("applyAPDCorrection", "boolean", "false", since="14.0"),
                ParamSpec("externalAuxFile", "File"),
            ),
            f"{_MTB} sar-op-sar-processing/src/main/java/eu/esa/sar/sar/gpf/geometric/RangeDopplerGeocodingOp.java",
        ),
    ]
}

#: ``<applicationData id=...>`` of this project's own node parameters (module doc).
EXTENSION_APP_ID = "bigearthnet_s1"
#: Operator -> this project's own parameters of its nodes (not SNAP's; in applicationData).
#: geometryConvention: how zero-Doppler time and slant range become GRD (line, pixel):
#: "esa" (the product's own convention, which its geolocation grid follows), "snap" (SNAP's
#: Range-Doppler Terrain Correction, as BigEarthNet-S1 v1.0 was made), "sarsen" (sarsen /
#: xarray-sentinel); see bigearthnet_s1.geocoding. SNAP's gpt always applies its own.
EXTENSION_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "Terrain-Correction": (ParamSpec("geometryConvention", "String", "esa", value_set=("esa", "snap", "sarsen")),),
}

# Names of the DEMs SNAP's ElevationModelRegistry knows that matter here (descriptor NAME
# constants in snap-engine snap-dem) plus "External DEM" (demName when externalDEMFile is set).
SRTM_1SEC = "SRTM 1Sec HGT"
COPERNICUS_30M = "Copernicus 30m Global DEM"
EXTERNAL_DEM = "External DEM"
